"""The reproducibility check: a fingerprint of `hero-lite reproduce` against a reference.

Digests must match exactly on the same environment (`environment_id`); across environments only
the numbers are compared, within tolerances by key pattern, and a changed discrete output (the
search's best policy) gets the verdict `discrete_across_environments` ('warn' by default, or
'drift'). Standard library only.
"""

from __future__ import annotations

import fnmatch
import json
import math
import tomllib
from dataclasses import dataclass
from typing import Any

FORMAT = "hero-lite-fingerprint/1"
VERDICTS = ("warn", "drift")

# Pattern -> {"abs": ..., "rel": ...}; a number holds when |now - ref| <= abs + rel * |ref|.
# The most specific pattern wins: an exact key, else the longest matching pattern.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "*psnr": {"abs": 0.3},                # dB: training across BLAS/ISA differences drifts by ~0.1 dB
    "*.occupied_fraction": {"abs": 0.02},
    "*model_bytes": {"abs": 0.0},          # exact: a function of the policy alone
    "*area_mm2": {"rel": 1e-9},            # a function of the preset and the policy alone
    "*latency_ms": {"rel": 0.03},          # depends on the traced samples, hence on the weights
    "*.cycles": {"rel": 0.03},
    "*energy_uj": {"rel": 0.03},
    "*cost_efficiency": {"rel": 0.03},
    "search.reward.*": {"abs": 0.05},      # reward = 0.1 x dB change, so 0.5 dB
    "*": {"rel": 1e-6},
}


@dataclass
class Tolerances:
    """Number tolerances by key pattern, and the verdict for changed discrete outputs across environments."""

    numbers: dict[str, dict[str, float]]
    discrete_across_environments: str = "warn"

    @classmethod
    def default(cls) -> "Tolerances":
        return cls({k: dict(v) for k, v in DEFAULT_TOLERANCES.items()})

    @classmethod
    def from_file(cls, path: str) -> "Tolerances":
        """Defaults overridden by a TOML or JSON file:

            [numbers]
            "train.test_psnr" = { abs = 0.5 }
            "sim.*.latency_ms" = { rel = 0.05 }
            [verdicts]
            discrete_across_environments = "drift"   # or "warn"
        """
        try:
            with open(path, "rb") as f:
                data = json.load(f) if path.endswith(".json") else tomllib.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"tolerance file not found: {path}") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"tolerance file {path}: not valid {'JSON' if path.endswith('.json') else 'TOML'} ({error})") from None
        if not isinstance(data, dict):
            raise ValueError(f"tolerance file {path}: expected a table at the top level")
        unknown = sorted(set(data) - {"numbers", "verdicts"})
        if unknown:
            raise ValueError(f"tolerance file {path}: unknown section(s) {', '.join(unknown)}; valid: numbers, verdicts")
        tolerances = cls.default()
        for pattern, spec in data.get("numbers", {}).items():
            if not isinstance(spec, dict) or not spec or set(spec) - {"abs", "rel"}:
                raise ValueError(f"tolerance file {path}: numbers.{pattern} must be a table with abs and/or rel")
            for kind, value in spec.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
                    raise ValueError(f"tolerance file {path}: numbers.{pattern}.{kind} = {value!r}; valid: a finite number >= 0")
            tolerances.numbers[pattern] = {k: float(v) for k, v in spec.items()}
        verdicts = data.get("verdicts", {})
        unknown = sorted(set(verdicts) - {"discrete_across_environments"})
        if unknown:
            raise ValueError(f"tolerance file {path}: unknown verdict(s) {', '.join(unknown)}; valid: discrete_across_environments")
        verdict = verdicts.get("discrete_across_environments", tolerances.discrete_across_environments)
        if verdict not in VERDICTS:
            raise ValueError(f"tolerance file {path}: discrete_across_environments = {verdict!r}; valid: {', '.join(VERDICTS)}")
        tolerances.discrete_across_environments = verdict
        return tolerances

    def for_key(self, key: str) -> tuple[float, float]:
        """(abs, rel) of the most specific pattern matching `key`."""
        if key in self.numbers:
            spec = self.numbers[key]
        else:
            matches = [p for p in self.numbers if fnmatch.fnmatchcase(key, p)]
            spec = self.numbers[max(matches, key=len)] if matches else {}
        return spec.get("abs", 0.0), spec.get("rel", 0.0)


@dataclass
class DriftRow:
    key: str
    reference: Any
    now: Any
    allowed: str
    verdict: str  # ok | drift | warn | info


def load_fingerprint(path: str) -> dict:
    """Read and validate a fingerprint file (clear ValueError / FileNotFoundError on bad input)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"reference fingerprint not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"reference fingerprint {path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"reference fingerprint {path}: not a {FORMAT} file")
    for section in ("digests", "numbers", "discrete", "environment", "config"):
        if not isinstance(data.get(section), dict):
            raise ValueError(f"reference fingerprint {path}: missing or malformed section {section!r}")
    if not isinstance(data.get("environment_id"), str):
        raise ValueError(f"reference fingerprint {path}: missing environment_id")
    for key, value in data["numbers"].items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"reference fingerprint {path}: numbers.{key} = {value!r} is not a number")
    return data


def compare_fingerprints(reference: dict, now: dict, tolerances: Tolerances | None = None) -> list[DriftRow]:
    """One row per key of either fingerprint.

    Verdicts: 'ok'; 'drift' (fails the check); 'warn' (a discrete output changed across environments
    under the default verdict); 'info' (a digest that differs across environments, as expected).
    A different miniature config makes every row incomparable, so it is itself a drift row.
    """
    tolerances = tolerances or Tolerances.default()
    same_env = reference["environment_id"] == now["environment_id"]
    rows = []
    if reference["config"] != now["config"]:
        rows.append(DriftRow("config", reference["config"], now["config"], "equal", "drift"))
    if not same_env:
        changed = sorted(k for k in set(reference["environment"]) | set(now["environment"])
                         if reference["environment"].get(k) != now["environment"].get(k))
        rows.append(DriftRow("environment", reference["environment_id"], now["environment_id"],
                             f"differs in {', '.join(changed)}", "info"))
    for key in sorted(set(reference["digests"]) | set(now["digests"])):
        ref, cur = reference["digests"].get(key), now["digests"].get(key)
        if ref == cur:
            verdict = "ok"
        elif ref is None or cur is None:
            verdict = "drift"
        else:
            verdict = "drift" if same_env else "info"
        rows.append(DriftRow(f"digests.{key}", _short(ref), _short(cur), "equal" if same_env else "any (other environment)",
                             verdict))
    for key in sorted(set(reference["numbers"]) | set(now["numbers"])):
        ref, cur = reference["numbers"].get(key), now["numbers"].get(key)
        abs_tol, rel_tol = tolerances.for_key(key)
        if ref is None or cur is None:
            rows.append(DriftRow(f"numbers.{key}", ref, cur, "present", "drift"))
            continue
        allowed = abs_tol + rel_tol * abs(ref)
        holds = abs(cur - ref) <= allowed or (math.isnan(ref) and math.isnan(cur))
        rows.append(DriftRow(f"numbers.{key}", ref, cur, f"+-{allowed:.4g}", "ok" if holds else "drift"))
    for key in sorted(set(reference["discrete"]) | set(now["discrete"])):
        ref, cur = reference["discrete"].get(key, "<missing>"), now["discrete"].get(key, "<missing>")
        if ref == cur:
            verdict = "ok"
        elif same_env or "<missing>" in (ref, cur):
            verdict = "drift"
        else:
            verdict = tolerances.discrete_across_environments
        rows.append(DriftRow(f"discrete.{key}", _describe_change(ref, cur)[0], _describe_change(ref, cur)[1],
                             "equal" if same_env else f"equal ({tolerances.discrete_across_environments} if not)", verdict))
    return rows


def _short(digest: str | None) -> str | None:
    return digest[:12] if isinstance(digest, str) else digest


def _describe_change(ref: Any, cur: Any) -> tuple[Any, Any]:
    """For dicts (policies) show only the entries that differ, so the report stays readable."""
    if isinstance(ref, dict) and isinstance(cur, dict) and ref != cur:
        keys = sorted(k for k in set(ref) | set(cur) if ref.get(k) != cur.get(k))
        return ({k: ref.get(k) for k in keys}, {k: cur.get(k) for k in keys})
    return ref, cur


def format_report(rows: list[DriftRow], only_problems: bool = False) -> str:
    """The drift report as an aligned text table: key, reference, now, allowed, verdict."""
    shown = [r for r in rows if not only_problems or r.verdict in ("drift", "warn")]
    cells = [("key", "reference", "now", "allowed", "verdict")]
    cells += [(r.key, _cell(r.reference), _cell(r.now), r.allowed, r.verdict) for r in shown]
    widths = [min(max(len(row[i]) for row in cells), 60) for i in range(5)]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in cells]
    counts = {v: sum(r.verdict == v for r in rows) for v in ("ok", "drift", "warn", "info")}
    lines.append(f"{counts['ok']} ok, {counts['drift']} drift, {counts['warn']} warn, {counts['info']} info")
    return "\n".join(lines)


def _cell(value: Any, width: int = 60) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."
