"""Text-pipeline benchmark: N synthetic utterances through the nightly text stages vs a spaCy tokenizer pass.

The stages run exactly as the nightly flow runs them per commit chunk: `writer.Writer.calls` itself
(redact -> enrich -> tag -> score+flag -> topics -> HTML scorecards -> commit -> pages written), with each
Prefect task swapped for its plain function wrapped in a timer, so no Prefect is involved. Topics mirror
the flow's first night: the first chunk of calls is stored without topics, then `flows._discover_topics`
fits the model on the stored window (its first fit; timed as "topic fit"), and every later call is
assigned in its own commit.
Everything is written under `with store.lock():` into a temporary out folder, `commit_every` calls per
commit (the flow's `import_commit_every`; workers prepare `batch.WORK_CALLS` at a time), the run's parts
compacted as the flow does, then the run row is committed and `store.publish(VIEWS)` builds the DuckDB file.

The baseline is `spacy.blank("en").tokenizer.pipe` over the same (raw) texts in the same process,
measured before and after the pipeline; the ratio uses the faster of the two (the conservative one).
Target (issue #8): total <= 3x the tokenizer pass at 1M utterances. Peak RSS (ru_maxrss) is printed.

`--sizes` runs each size in a fresh process (so peak memory is per size), prints a table and saves
a log-log plot of time against size with a linear reference line (bench/results/text_scaling_<representation>.png,
`_vary` added with --vary).

Example:
    python bench/text_pipeline.py --utterances 100000
    python bench/text_pipeline.py --sizes 1000,10000,100000,1000000
    python bench/text_pipeline.py --representation tfidf --from-files   # as a real night: JSON files in
    python bench/text_pipeline.py --representation tfidf --vary         # turns as rarely repeated as real ones
"""
from __future__ import annotations

import argparse
import os
import cProfile
import json
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tagging import AGENT, CUSTOMER, FILLERS, MONTHS, NEUTRAL_AGENT, NEUTRAL_CUSTOMER
from pipeline.config import Config  # noqa: E402

STAGES = ["redact", "enrich", "tag", "score+flag", "topics", "pages", "prepare (workers)", "topic fit", "write",
          "write pages", "compact", "publish"]
# The stages issue #8's benchmark names, "tag + topics + score + write" (sentiment is scoring's: rubrics test it)
NAMED = ["enrich", "tag", "score+flag", "topics", "topic fit", "write", "compact", "publish"]
FIRST_DAY = date(2026, 10, 12)
AGENTS = [f"a_{n:03d}" for n in range(60)]
QUEUES = ["billing", "technical", "sales", "retention", "general"]
NAMES = ["Sam", "Priya", "Daniel", "Maria", "Tom", "Aisha", "Lee", "Grace"]
OPENING = ["thank you for calling Skyline Mobile my name is {name} how can I help",
           "good morning you're through to Skyline Mobile this is {name} speaking",
           "Thank you for calling Skyline Mobile, my name is {name}. How can I help you today?"]
DISCLOSURE = ["this call may be recorded for quality and training", "Calls are recorded for training purposes."]
VERIFY = ["can I take your date of birth to verify the account", "Can I have your full name and postcode, please?",
          "can you confirm the last four digits of the card"]
CLOSING = ["is there anything else I can help you with today", "Is there anything else I can do for you?"]
GOODBYE = ["have a great day goodbye", "Thanks for calling, have a lovely evening. Bye.", "take care bye bye"]
# Personal data as a caller says it (Whisper style): cards, phones, e-mails, dates of birth, SSNs.
PII = ["my date of birth is the {d}th of {m} nineteen {y}", "yeah it's {card}",
       "the card number is four one one one one one one one one one one one one one one one",
       "you can reach me on {phone}", "my mobile is oh seven seven {p3} {p3} {p3}",
       "it's anna dot brooks at gmail dot com", "my email is j.smith{n}@example.com",
       "my social is {s3} {s2} {s4}", "Sure, it's the fourth of March, nineteen eighty six."]
CARDS = ["4111 1111 1111 1111", "4242 4242 4242 4242", "5555 5555 5555 4444", "3782 822463 10005"]


def _fill(rng: random.Random, text: str) -> str:
    return text.format(n=rng.randint(1000, 9999), d=rng.randint(1, 28), m=rng.choice(MONTHS),
                       y=rng.choice(["sixty", "seventy two", "eighty six", "ninety one"]), card=rng.choice(CARDS),
                       phone=f"{rng.randint(200, 989)} 555 {rng.randint(1000, 9999):04d}",
                       p3=rng.randint(100, 999), s3=rng.randint(100, 899), s2=rng.randint(10, 99),
                       s4=rng.randint(1000, 9999), name=rng.choice(NAMES))


def _turn(rng: random.Random, speaker: str) -> str:
    signal, neutral = (AGENT, NEUTRAL_AGENT) if speaker == "agent" else (CUSTOMER, NEUTRAL_CUSTOMER)
    if speaker == "customer" and rng.random() < 0.06:
        return PII[rng.randrange(len(PII))]
    text = rng.choice(FILLERS) + rng.choice(signal if rng.random() < 0.25 else neutral)
    if rng.random() < 0.3:
        text += " " + rng.choice(neutral)
    return text


def _vocabulary() -> list[str]:
    """The words of 913 real customer-service utterances (../shared/data, DSTC 11), for --vary."""
    path = ROOT.parent / "shared" / "data" / "dstc11-intent-dev" / "utterances.jsonl"
    if not path.exists():
        sys.exit(f"--vary needs {path} (the shared public data beside the project)")
    said = (json.loads(line)["utterance"].lower() for line in path.read_text().splitlines() if line.strip())
    return sorted({word for text in said for word in text.split() if word.isalpha()})


def generate(n: int, seed: int = 11, days: int = 30, run_id: str = "bench", calls: int | None = None,
             vary: bool = False):
    """Yield (call row, utterance rows) until n utterances (or `calls` calls): 10-20 alternating turns per call,
    dates over `days`. The templates repeat: of 100,000 turns about 17,000 differ. vary: end every turn with two
    words of real customer-service speech, so nearly every turn differs, as in real calls (where 904 of DSTC 11's
    913 customer utterances do): a cost that hides behind a cache of repeated texts shows.

    Rows are shaped like imported transcripts (pipeline/transcripts.py): words empty, confidence null.
    Calls come in time order, as a nightly folder would list them.
    """
    rng = random.Random(seed)
    vocabulary = _vocabulary() if vary else []
    expected_calls, made, k = calls or max(1, n // 15), 0, 0
    while made < n and k < expected_calls + (n if calls is None else 0):
        day = FIRST_DAY + timedelta(days=min(days - 1, k * days // expected_calls))
        started = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600))
        turns = min(rng.randint(10, 20), n - made)
        call_id = f"c{seed}-{k:07d}"
        script = [rng.choice(OPENING) + " " + rng.choice(DISCLOSURE)]
        for i in range(1, turns):
            speaker = "agent" if i % 2 == 0 else "customer"
            if speaker == "agent" and i == 2:
                script.append(rng.choice(VERIFY))
            elif speaker == "agent" and i >= turns - 2:
                script.append(rng.choice(CLOSING if i == turns - 2 else GOODBYE))
            else:
                script.append(_turn(rng, speaker))
        t, utterances = rng.uniform(0.2, 1.5), []
        for i, text in enumerate(script):
            text = _fill(rng, text)
            if vocabulary:
                text = f"{text} {rng.choice(vocabulary)} {rng.choice(vocabulary)}"
            duration = 0.35 * len(text.split()) + rng.uniform(0.2, 1.0)
            utterances.append({"call_id": call_id, "utt_idx": i, "speaker": "agent" if i % 2 == 0 else "customer",
                               "start_s": round(t, 3), "end_s": round(t + duration, 3), "text": text, "words": [],
                               "confidence": None, "call_date": day})
            t += duration + rng.choice([0.6, 0.8, 1.2, 2.5, -0.4])  # a negative gap: talking over each other
        call = {"call_id": call_id, "source_path": f"{day}/{call_id}.json", "started_at": started, "call_date": day,
                "duration_s": round(t, 3), "agent_id": rng.choice(AGENTS), "queue": rng.choice(QUEUES),
                "direction": "inbound", "asr_model": "transcript", "status": "ok", "extra": None, "run_id": run_id}
        made += turns
        k += 1
        yield call, utterances


def tokenizer_pass(texts: list[str]) -> tuple[float, int]:
    import spacy

    nlp = spacy.blank("en")
    start, tokens = time.perf_counter(), 0
    for doc in nlp.tokenizer.pipe(texts, batch_size=1000):
        tokens += len(doc)
    return time.perf_counter() - start, tokens


class Timers:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
        return timed


def transcript_doc(call: dict, utterances: list[dict]) -> dict:
    """A generated call as a transcript file holds it (DESIGN.md format), as a centre's own ASR delivers it."""
    return {"call_id": call["call_id"], "started_at": call["started_at"].isoformat(), "agent_id": call["agent_id"],
            "queue": call["queue"], "direction": call["direction"],
            "utterances": [{k: u[k] for k in ("speaker", "start_s", "end_s", "text")} for u in utterances]}


def write_transcripts(calls: list, folder: Path) -> None:
    """The calls as transcript files, one per call."""
    folder.mkdir(parents=True)
    for item in calls:
        (folder / f"{item.call['call_id']}.json").write_text(json.dumps(transcript_doc(item.call, item.utterances)))


def run_pipeline(n: int, commit_every: int, representation: str, out: Path, seed: int, workers: int,
                 from_files: bool = False, vary: bool = False) -> dict:
    """The flow's text stages over n generated utterances; seconds per stage (workers=1) and counts.

    from_files: the main night reads the calls from transcript files (written before the clock starts), as the
    nightly flow does, instead of taking them from memory.
    """
    import flows
    from pipeline import archive, batch, discover, qa, scorecard, tag, transcripts
    from pipeline.config import Config, RunnerConfig, TopicsConfig
    from pipeline.rubric import load_qa
    from pipeline.runs import Run
    from pipeline.signals import load_signals
    from pipeline.store import Store
    from pipeline.views import VIEWS

    cfg = Config(out=out, signals=ROOT / "signals", import_commit_every=commit_every,
                 topics=TopicsConfig(representation=representation), runner=RunnerConfig(workers=workers))
    library = load_signals(cfg.signals)
    tagger, rules = tag.Tagger(library), load_qa(cfg.signals, library)
    timers = Timers()
    # The flow's tasks, as plain timed functions: flows._writer and _discover_topics look them up at call time.
    # With workers > 1 the stages run in the pool's processes, where only their sum ("prepare") is seen.
    flows.redact_calls = timers.wrap("redact", batch.redact_calls)
    flows.enrich = timers.wrap("enrich", qa.add_sentiment)
    flows.tag_calls = timers.wrap("tag", tag.tag_calls)
    flows.score_calls = timers.wrap("score+flag", qa.assess)
    flows.assign_topics = timers.wrap("topics", discover.assign)
    flows.fit_topics = timers.wrap("fit only", discover.fit)
    flows.render_pages = timers.wrap("pages", scorecard.ready_pages)
    store = Store(out)
    run = Run(cfg.hash(), library.hash, rules.hash)
    calls = [SimpleNamespace(call=c, utterances=us) for c, us in generate(n, seed, run_id=run.run_id, vary=vary)]
    first, stored = [], 0  # the first night: the calls the topic model is first fitted on
    while calls and stored < min(n // 2, 20_000):
        first.append(calls.pop(0))
        stored += len(first[-1].utterances)
    if from_files:
        write_transcripts(calls, out.parent / "transcripts")
    with store.lock():
        commit = store.commit
        store.commit = timers.wrap("write", commit)
        writer = flows._writer(store, run, tagger, rules, cfg)
        writer.write_pages = timers.wrap("write pages", writer.write_pages)
        start = time.perf_counter()
        archive.record_rubrics(writer)  # as the flow does before it stores a night's calls
        flows.store_imported(cfg.model_copy(update={"runner": RunnerConfig(workers=1)}), writer, first, False)
        first_night = time.perf_counter() - start
        fit_start, written = time.perf_counter(), timers.seconds["write"]
        flows._discover_topics(cfg, writer)  # no model yet: the first fit, on the stored window
        # the whole refit (store reads, fit, model save) except its commit, which counts as "write"
        timers.seconds["topic fit"] += time.perf_counter() - fit_start - (timers.seconds["write"] - written)
        before = dict(timers.seconds)
        cpu_before = _cpu()
        start = time.perf_counter()
        if from_files:
            calls = transcripts.new_files(out.parent / "transcripts")[0]
        flows.store_imported(cfg, writer, calls, False)  # the rest, as a night imports them
        timers.wrap("write pages", writer.pages_written)()  # the last batch's, as the scorecard-pages step does
        written = timers.seconds["write"]
        timers.wrap("compact", store.compact)(run.run_id)  # as the flow does at the end of each night
        timers.seconds["write"] = written  # compact's own commit is compact's time, not the night's writes
        run.finish()
        store.commit(run.run_id, 0, {"runs": [run.row()], "failures": run.failures})
        before_publish = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        timers.wrap("publish", store.publish)(VIEWS)
        main_night = time.perf_counter() - start
        cpu = {who: after - was for (who, after), was in zip(_cpu().items(), cpu_before.values())}
    store.commit = commit
    seconds = dict(timers.seconds)
    wall = first_night + seconds["topic fit"] + main_night
    if workers > 1:  # stage timers saw only the first night; the main night's stages ran in the workers
        written = seconds["write"] - before["write"] + seconds["write pages"] - before.get("write pages", 0.0)
        seconds["prepare (workers)"] = main_night - written - seconds["compact"] - seconds["publish"]
    seconds["other"] = max(0.0, wall - sum(seconds.get(s, 0.0) for s in STAGES))
    model = writer.topic_model
    return {"seconds": seconds, "total": wall, "counts": dict(run.counts), "stored": run.counts["utterances"],
            "first_night": first_night, "main_night": main_night, "peak_before_publish_mb": before_publish,
            "topics": int(model.n_topics_) if model is not None else 0, "workers": workers,
            "parts": sum(map(len, store.manifest().values())), "main_night_cpu": cpu}


def _cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process and of its ended children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"main": own.ru_utime + own.ru_stime, "workers": children.ru_utime + children.ru_stime}


def measure(args) -> dict:
    texts = [u["text"] for _, us in generate(args.utterances, args.seed, vary=args.vary) for u in us]
    base_before, tokens = tokenizer_pass(texts)
    del texts
    with tempfile.TemporaryDirectory(prefix="callintel-text-bench-", dir=args.keep) as tmp:
        if args.profile:
            profiler = cProfile.Profile()
            result = profiler.runcall(run_pipeline, args.utterances, args.commit_every, args.representation,
                                      Path(tmp) / "out", args.seed, args.workers, args.from_files, args.vary)
            profiler.dump_stats(args.profile)
        else:
            result = run_pipeline(args.utterances, args.commit_every, args.representation, Path(tmp) / "out",
                                  args.seed, args.workers, args.from_files, args.vary)
        if args.keep:  # a speed change must not change what is stored: compare two commits' folders
            (Path(tmp) / "out").rename(Path(args.keep) / "out")
    texts = [u["text"] for _, us in generate(args.utterances, args.seed, vary=args.vary) for u in us]
    base_after, _ = tokenizer_pass(texts)
    base = min(base_before, base_after)
    return {**result, "utterances": args.utterances, "tokens": tokens, "baseline": base,
            "baseline_before": base_before, "baseline_after": base_after, "ratio": result["total"] / base,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def report(r: dict) -> None:
    n = r["utterances"]
    print(f"{n:,} utterances, {r['counts']['tagged']:,} calls, {r['workers']} worker(s), "
          f"commit_every {r['commit_every']}, "
          f"{r['parts']:,} part files, {r['counts']['redacted']:,} PII spans redacted, {r['topics']} topics "
          f"({r['representation']}){', main night read from transcript files' if r.get('from_files') else ''}"
          f"{', turns varied (--vary)' if r.get('vary') else ''}")
    cpu = r["main_night_cpu"]
    print(f"first night (sequential) {r['first_night']:.1f} s + first topic fit + main night {r['main_night']:.1f} s "
          f"(CPU: {cpu['main']:.1f} s this process, {cpu['workers']:.1f} s workers)")
    print(f"{'stage':<18}{'seconds':>10}{'utt/s':>12}{'share':>8}")
    for stage in STAGES + ["other"]:
        s = r["seconds"].get(stage, 0.0)
        # a stage that took less than the tenth of a second printed has no rate worth reading (and would overflow)
        rate = f"{n / s:12,.0f}" if s >= 0.05 else f"{'-':>12}"
        print(f"{stage:<18}{s:10.1f}{rate}{s / r['total']:8.1%}")
    print(f"{'total':<18}{r['total']:10.1f}{n / r['total']:12,.0f}")
    print(f"spaCy tokenizer pass {r['baseline']:.1f} s (before {r['baseline_before']:.1f} s, after "
          f"{r['baseline_after']:.1f} s; {r['tokens']:,} tokens)")
    print(f"ratio total / tokenizer: {r['ratio']:.1f}x (target <= 3.0x)   peak RSS {r['peak_mb']:,.0f} MB "
          f"({r['peak_before_publish_mb']:,.0f} MB before publish), largest worker {r['worker_peak_mb']:,.0f} MB")
    if r["workers"] == 1:  # with workers the stages' own times are not seen, only their sum
        named = named_seconds(r)
        print(f"the stages issue #8 names (tag + topics + score + write: {', '.join(NAMED)}): {named:.1f} s, "
              f"{named / r['baseline']:.1f}x the tokenizer pass; the rest (redaction, HTML pages, batches) "
              f"{r['total'] - named:.1f} s")


def named_seconds(r: dict) -> float:
    """The seconds of the stages issue #8 names, of a run with one worker."""
    return sum(r["seconds"].get(stage, 0.0) for stage in NAMED)


def scaling(args) -> None:
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        cmd = [sys.executable, __file__, "--utterances", str(size), "--commit-every", str(args.commit_every),
               "--representation", args.representation, "--seed", str(args.seed), "--workers", str(args.workers),
               "--json"] + (["--from-files"] if args.from_files else []) + (["--vary"] if args.vary else [])
        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        report(rows[-1])
        print(flush=True)
    print(f"{'utterances':>11}{'total s':>9}{'named s':>9}{'tokenize s':>11}{'ratio':>7}{'named':>7}{'ms/1k utt':>10}"
          f"{'peak MB':>9}{'worker MB':>10}")
    for r in rows:
        # with workers the stages' own times are not seen: no named figure
        named = (f"{named_seconds(r):9.1f}", f"{named_seconds(r) / r['baseline']:6.1f}x") if r["workers"] == 1 \
            else (f"{'-':>9}", f"{'-':>7}")
        print(f"{r['utterances']:>11,}{r['total']:9.1f}{named[0]}{r['baseline']:11.2f}{r['ratio']:6.1f}x{named[1]}"
              f"{1e6 * r['total'] / r['utterances']:10.0f}{r['peak_mb']:9,.0f}{r['worker_peak_mb']:10,.0f}")
    name = ROOT / "bench" / "results" / f"text_scaling_{args.representation}{'_vary' if args.vary else ''}"
    name.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=str))
    plot(rows, name.with_suffix(".png"), f"{args.representation} topics, {args.workers} worker(s)"
         f"{', turns varied' if args.vary else ''}")


def plot(rows: list[dict], path: Path, setting: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["utterances"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.loglog(sizes, [r["total"] for r in rows], "o-", label="the whole night (with redaction, HTML pages)")
    if all(r["workers"] == 1 for r in rows):
        ax.loglog(sizes, [named_seconds(r) for r in rows], "D-", label="tag + topics + score + write (issue #8)")
    ax.loglog(sizes, [r["baseline"] for r in rows], "s-", label="spaCy tokenizer pass")
    ref = rows[-1]
    ax.loglog(sizes, [ref["total"] * s / ref["utterances"] for s in sizes], "k:", label="linear (through largest)")
    ax.loglog(sizes, [3 * r["baseline"] for r in rows], "r:", lw=0.8, label="target: 3x tokenizer")
    ax.set_xlabel("utterances")
    ax.set_ylabel("seconds")
    ax.set_title(f"callintel text stages: time vs corpus size\n({setting})", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=1_000_000, help="utterances (default 1,000,000)")
    parser.add_argument("--sizes", help="comma-separated sizes: run each (fresh process), print a table, plot")
    parser.add_argument("--commit-every", type=int, default=Config().import_commit_every,
                        help="calls per commit (default: the flow's for imported transcripts, import_commit_every)")
    parser.add_argument("--representation", choices=["embedding", "tfidf"], default="embedding",
                        help="topic representation (callintel.yaml topics.representation; default embedding)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes preparing batches (the flow's default: one per core); 1 shows every stage")
    parser.add_argument("--from-files", action="store_true",
                        help="the main night reads its calls from transcript files (written before timing), as a "
                             "real night does; default: from memory, the text stages alone")
    parser.add_argument("--vary", action="store_true",
                        help="end every turn with two words of real customer-service speech, so turns repeat as "
                             "rarely as in real calls (needs ../shared/data)")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the pipeline into FILE and print the top 30")
    parser.add_argument("--keep", metavar="DIR", help="keep the out folder as DIR/out (DIR must exist, out must not)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sizes:
        scaling(args)
        return
    result = {**measure(args), "commit_every": args.commit_every, "representation": args.representation,
              "from_files": args.from_files, "vary": args.vary}
    if args.json:
        print(json.dumps(result, default=str))
        return
    report(result)
    if args.profile:
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(30)
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
