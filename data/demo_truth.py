"""What the demo script implies, for tests and benchmarks (never computed by the product's code).

From `demo_script.yaml` (the lines, who says them, their gaps and signal annotations) and
the line times in `demo_transcripts/` (the same lines, placed): the timings the script
fixes, and the QA result the default rubric (`signals/rubric.yaml`) and flag rules
(`signals/flags.yaml`) must give each call — written out criterion by criterion here,
from each criterion's question, not by running the rubric engine.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SCRIPT = yaml.safe_load((HERE / "demo_script.yaml").read_text())
RUBRIC = yaml.safe_load((HERE.parent / "signals/rubric.yaml").read_text())["rubric"]
ACCOUNT_BUSINESS = {"cancel_intent", "refund_request", "billing_question", "card_details_request", "payment_taken",
                    "account_update"}
PROBLEM = {"complaint", "dissatisfaction", "technical_issue", "delivery_problem"}
AGENT_ACCOUNT_ACTIONS = {"card_details_request", "payment_taken", "account_update"}  # verified before these


def call_ids() -> list[str]:
    return [c["call_id"] for c in SCRIPT["calls"]]


def lines(call_id: str) -> list[dict]:
    """The script's lines of a call with their start/end times from the transcript."""
    script = next(c for c in SCRIPT["calls"] if c["call_id"] == call_id)
    placed = json.loads((HERE / "demo_transcripts" / f"{call_id}.json").read_text())["utterances"]
    gap = SCRIPT["defaults"]["gap_s"]
    return [{**line, "start_s": u["start_s"], "end_s": u["end_s"], "signals": set(line.get("signals", [])),
             "gap_s": line.get("gap_s", gap) if i else 0.0} for i, (line, u) in enumerate(zip(script["lines"], placed))]


def timing(call_id: str) -> dict:
    """Silence, overlap and interruptions exactly as the script's gaps set them."""
    ls = lines(call_id)[1:]
    return {"silence_s": round(sum(max(line["gap_s"], 0) for line in ls), 3),
            "max_silence_s": max(max(line["gap_s"], 0) for line in ls),
            "overlap_s": round(sum(-line["gap_s"] for line in ls if line["gap_s"] < 0), 3),
            "agent_interruptions": sum(1 for line in ls if line["gap_s"] < 0 and line["speaker"] == "agent"),
            "customer_interruptions": sum(1 for line in ls if line["gap_s"] < 0 and line["speaker"] == "customer"),
            "turns": 1 + sum(1 for a, b in zip(lines(call_id), ls) if a["speaker"] != b["speaker"])}


def criteria(call_id: str) -> dict[str, str]:
    """pass / fail / na per criterion of the default rubric, from the annotated lines."""
    ls = lines(call_id)
    duration = json.loads((HERE / "demo_transcripts" / f"{call_id}.json").read_text())["utterances"][-1]["end_s"]
    said = set().union(*(line["signals"] for line in ls))

    def at(signal, ok=lambda t: True):
        return any(signal in line["signals"] and ok(line["start_s"]) for line in ls)

    def verdict(passed, na=False):
        return "na" if na else ("pass" if passed else "fail")

    return {
        "greeting": verdict(at("agent_greeting", lambda t: t <= 15)),
        "agent_name": verdict(at("agent_name", lambda t: t <= 30)),
        "recording_disclosure": verdict(at("recording_disclosure", lambda t: t <= 30)),
        # the check's line must come before the agent's first line acting on the account, if any
        "verify_identity": verdict(at("identity_verification", lambda t: t <= min(
            (line["start_s"] for line in ls if line["signals"] & AGENT_ACCOUNT_ACTIONS), default=duration)),
            na=not said & ACCOUNT_BUSINESS),
        "empathy": verdict(bool(said & {"empathy", "apology"}), na=not said & PROBLEM),
        "hold_etiquette": verdict({"hold_request", "hold_return"} <= said,
                                  na=not said & {"hold_request", "hold_return"} and timing(call_id)["max_silence_s"] < 20),
        "no_interruptions": verdict(timing(call_id)["agent_interruptions"] == 0),
        # a transferred call ends with the next person: these are theirs, unless the agent did them anyway
        "resolution_confirmed": verdict("agent_confirms_resolution" in said,
                                        na="transfer" in said and "agent_confirms_resolution" not in said),
        "further_help": verdict("further_help" in said, na="transfer" in said and "further_help" not in said),
        # the last line that is the closing must start in the last 30 s of speech
        "closing": verdict(at("closing", lambda t: t >= duration - 30),
                           na="transfer" in said and "closing" not in said),
        "no_profanity": verdict("agent_profanity" not in said),
    }


def scorecard(call_id: str) -> dict:
    """pct, passed, auto_failed of the default rubric."""
    results, points = criteria(call_id), {c["id"]: c["points"] for c in RUBRIC["criteria"]}
    auto = {c["id"] for c in RUBRIC["criteria"] if c.get("auto_fail")}
    earned = sum(points[c] for c, r in results.items() if r == "pass")
    possible = sum(points[c] for c, r in results.items() if r != "na")
    auto_failed = any(results[c] == "fail" for c in auto)
    pct = 0.0 if auto_failed else round(100 * earned / possible, 1)
    return {"pct": pct, "passed": not auto_failed and pct >= RUBRIC["pass_pct"], "auto_failed": auto_failed}


def ends_negative(call_id: str) -> bool:
    """The customer ends the call unhappy, as the script's author judged it (customer_ends)."""
    return next(c for c in SCRIPT["calls"] if c["call_id"] == call_id).get("customer_ends") == "negative"


def flags(call_id: str) -> set[str]:
    """Flag ids the default rules must raise."""
    said = set().union(*(line["signals"] for line in lines(call_id)))
    card, results = scorecard(call_id), criteria(call_id)
    rules = {
        "auto_fail": card["auto_failed"],
        "low_qa_score": card["pct"] < 60,
        "missing_disclosure": results["recording_disclosure"] == "fail",
        "unverified_account_business": (bool(said & ACCOUNT_BUSINESS) and "identity_verification" not in said
                                        or results["verify_identity"] == "fail"),
        "escalation": "supervisor_request" in said,
        "churn_not_saved": "cancel_intent" in said and "retention_offer" not in said,
        "frustrated_customer": "dissatisfaction" in said and bool(
            said & {"complaint", "customer_profanity", "repeat_caller", "supervisor_request"}),
        "ended_negative": ends_negative(call_id) and lines(call_id)[-1]["end_s"] > 30,
        "long_silence": timing(call_id)["max_silence_s"] > 60,
    }
    return {flag for flag, raised in rules.items() if raised}
