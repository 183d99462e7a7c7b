"""Reading the YAML users write, and saying where it is wrong.

An error is one line: the file, the line, the key path and what is wrong, as a compiler writes it
(`signals/rubric.yaml:63: rubric.criteria[7].points: must be a number (it is 'ten')`), so a terminal or an editor
opens the file at that line, and an index counted from 0 never needs decoding.
"""
from __future__ import annotations

import codecs
import difflib
import re
from collections.abc import Collection
from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel, ValidationError

ID = r"^[a-z][a-z0-9_]*$"  # of a signal, category, rubric, criterion or flag
# "<file>.yaml: <key path>: ...", the start of every error about a place in a YAML file
_KEY = r"(?P<key>[a-z_]\w*(?:\.[a-z_]\w*|\[\d+\])*)"  # a key path: asr.beam_size, signals[0].phrases
_PLACE = re.compile(rf"(?P<path>.+?\.ya?ml): {_KEY}: ")
_ALSO = re.compile(rf"; also {_KEY}: ")  # a further problem of the same file (format_validation_error)


class ConfigError(Exception):
    """A problem in user configuration; the message is one line naming file and key. Where that is a key of a
    YAML file, its line goes after the file's name: every check that finds a problem gets it, and none has to
    carry the parsed file around to say it."""

    def __init__(self, message: str):
        super().__init__(with_line(message))


def with_line(message: str) -> str:
    """A message about a place in a YAML file (`<file>.yaml: <key path>: ...`) with the place's line after the
    file's name, and the line of each further problem (`; also <key path>: `)."""
    if not (place := _PLACE.match(message)):
        return message

    def line_of(key_path: str) -> int | None:
        loc = [int(i) if i else key for key, i in re.findall(r"([a-z_]\w*)|\[(\d+)\]", key_path)]
        return yaml_line(Path(place["path"]), loc)

    line = line_of(place["key"])
    message = message if line is None else f"{place['path']}:{line}: {message[len(place['path']) + 2:]}"
    # the problems after the first (format_validation_error) are elsewhere in the file: each gets its own line
    return _ALSO.sub(lambda m: f"; also line {n}: {m['key']}: " if (n := line_of(m["key"])) else m[0], message)


def yaml_line(path: Path, loc: list) -> int | None:
    """The line (from 1) of the key or list item at loc (keys and indexes) in a YAML file, or of the deepest
    one on the way there that exists (a missing key's parent); None when the file cannot be read."""
    try:
        node = yaml.compose(_decode(path, path.read_bytes()), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError, ConfigError):
        return None
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            key, node = next(((k, v) for k, v in node.value if k.value == part), (None, None))
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            key = node = node.value[part]
        else:
            break
        if key is None:
            break
        line = key.start_mark.line
    return None if line is None else line + 1


def _describe(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit} (it is {_shown(error.get('input'))})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (it is {_shown(error.get('input'))})"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} (it is empty)" if not error.get("input") else \
            f"must have at least {ctx.get('min_length')} (it has {len(error['input'])})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_type" and isinstance(error.get("input"), bool):
        return f"YAML read {str(error['input']).lower()} as a boolean, not text: put it in quotes"
    if said := _WANTED.get(kind):
        return f"{said} (it is {_shown(error.get('input'))})"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID:
        return ("an id is lower-case letters, digits and _, starting with a letter, like cancel_intent "
                f"(it is {_shown(error.get('input'))})")
    return error["msg"][0].lower() + error["msg"][1:]


# what a value of the wrong type should have been, in the words of the YAML it is written in
_WANTED = {**dict.fromkeys(("float_parsing", "float_type"), "must be a number"),
           **dict.fromkeys(("int_parsing", "int_type", "int_from_float"), "must be a whole number"),
           **dict.fromkeys(("dict_type", "model_type", "model_attributes_type"), "must be keys and values"),
           **dict.fromkeys(("bool_parsing", "bool_type"), "must be true or false"),
           "list_type": "must be a list, e.g. [a, b] or one '- item' a line", "string_type": "must be text",
           "path_type": "must be a folder or file name"}


def _shown(value) -> str:
    """A value as the YAML author wrote it, shortened; a text without what redaction takes out: a transcript's
    field error (a card number in a speaker or time column) is stored in `failures` and the run summary."""
    if isinstance(value, dict):
        return "keys and values"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        from pipeline.redact import redact_text  # here: loading a configuration needs no redaction rules
        value = redact_text(value)[0]
    said = "null (empty)" if value is None else str(value).lower() if isinstance(value, bool) else repr(value)
    return said if len(said) <= 40 else said[:37] + "..."


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """The keys the file takes where loc points (an unknown key's parent), or None where that is not one
    model (a condition that may be one of several kinds)."""
    for part in loc:
        if isinstance(part, int):  # an item of a list: the list's model
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
        if model is None:
            return None
    return [name for name, field in model.model_fields.items() if not field.exclude and _taken_under(field, loc)]


def _taken_under(field, loc: tuple) -> bool:
    """Whether a file takes this key under its top-level key loc[0]: a field marked `only_under` (a flag rule's
    scorecard tests, in the condition model rubrics share) is not listed as taken anywhere else."""
    only = field.json_schema_extra.get("only_under") if isinstance(field.json_schema_extra, dict) else None
    return only is None or bool(loc) and loc[0] == only


def _model_in(annotation) -> type[BaseModel] | None:
    """The one model in `Model`, `list[Model]`, `Model | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = {m for arg in get_args(annotation) if (m := _model_in(arg))}
    return found.pop() if len(found) == 1 else None


def did_you_mean(name: str, known: Collection[str]) -> str:
    """"; did you mean 'x'?" for the one known id closest to a misspelt one (as a misspelt column is told), or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def format_validation_error(source: str, exc: ValidationError, model: type[BaseModel] | None = None,
                            docs: str | None = None) -> str:
    """One line: the file, then each problem's key path and what is wrong (the first SHOWN of them), so one
    edit fixes them all rather than one run each. An unknown key also lists the keys taken there (from model, the
    file's own) and where they are documented (docs)."""
    # An unknown key first: a misspelt `phrase:` also leaves `phrases` missing, and the typo is the news.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    said = [_problem(error, model) for error in errors[:SHOWN]]
    if errors[0]["type"] == "extra_forbidden" and docs:
        said[0] += f"; see {docs}"
    more = len(errors) - len(said)
    tail = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
    return f"{source}: {'; also '.join(said)}{tail}"


SHOWN = 3  # problems of one file named in its error; a file wrong throughout is most likely not the kind expected


def _problem(error: dict, model: type[BaseModel] | None) -> str:
    said = _describe(error)
    if error["type"] == "extra_forbidden" and model and (keys := _keys_at(model, error["loc"][:-1])):
        said += f" (the keys here: {', '.join(keys)})"
        said += _belongs_higher(model, error["loc"])
    return f"{_key_path(error['loc'])}: {said}"


def _belongs_higher(model: type[BaseModel], loc: tuple) -> str:
    """Where an unknown key is one of an enclosing object's (na_if written inside its criterion's pass_if), the
    hint that names that object: its indentation, not its spelling, is what is wrong."""
    for up in range(len(loc) - 2, 0, -1):
        if isinstance(loc[up], str) and loc[-1] in (_keys_at(model, loc[:up]) or ()):
            return f"; {loc[-1]} is a key of {_key_path(loc[:up])}: move it out to sit beside {loc[up]}"
    return ""


# libyaml's parser reads the same safe subset (same constructor) in a fraction of the time; each pool worker
# reads the whole signal library at start-up, where the pure-Python one cost it about 0.2 s.
class SAFE_LOADER(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML 1.2's booleans: true and false only. YAML 1.1 also reads yes/no/on/off as booleans, so a phrase
    list `[no, nope]` held False and a counter-example `yes` True; where a setting wants a boolean, the
    models still take "yes"/"no"/"on"/"off" as one.

    A key given twice in one mapping is an error: YAML says so, but PyYAML keeps the last, so a second `signals:`
    block in a file dropped every signal of the first without a word."""

    def construct_mapping(self, node, deep=False):
        first: dict = {}
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                if key.value in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key '{key.value}' is given twice (first on line {first[key.value] + 1})",
                        key.start_mark)
                first[key.value] = key.start_mark.line
        return super().construct_mapping(node, deep)


SAFE_LOADER.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in SAFE_LOADER.yaml_implicit_resolvers.items()}
SAFE_LOADER.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def yaml_files(folder: Path) -> list[Path]:
    """The YAML files of a folder users edit, in a stable order. Hidden ones are not the author's: macOS writes
    `._rubric.yaml` (binary) beside each file copied to a share or a USB stick, Emacs a `.#core.yaml` lock."""
    found = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    return [path for path in found if not path.name.startswith(".")]


def read_yaml(path: Path) -> object:
    """Parse a YAML file, turning every failure into a one-line ConfigError."""
    try:
        text = _decode(path, path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    try:
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(_syntax_error(path, text, exc)) from None


def _syntax_error(path: Path, text: str, exc: yaml.YAMLError) -> str:
    """`file:line: not valid YAML: problem (column C ...)`, the form an editor opens at the line. A tab is named:
    an editor that shows it as spaces leaves the author no way to see why the indent is wrong."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"{path}: not valid YAML: {problem}"
    lines = text.splitlines()
    row = lines[mark.line] if mark.line < len(lines) else ""
    if "tab" in problem or row[mark.column:mark.column + 1] == "\t":
        return (f"{path}:{mark.line + 1}: not valid YAML: a tab character (column {mark.column + 1}); indent "
                "with spaces, YAML does not allow tabs there")
    where = f"column {mark.column + 1}"
    context, opened = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and opened is not None and opened.line != mark.line:  # an unclosed [ or " is on an earlier line
        where += f"; {context} that starts on line {opened.line + 1}"
    return f"{path}:{mark.line + 1}: not valid YAML: {problem} ({where})"


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 (with or without a byte-order mark), or UTF-16 with its mark: what Windows Notepad saves as
    "Unicode". Anything else (Word's or an old Notepad's Windows-1252 curly quotes and pound signs) is named by
    its line, with what to do."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}): "
                          "save the file with the encoding UTF-8") from None
