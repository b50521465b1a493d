"""The outputs of a search: the Pareto fronts of the recorded trials, their table, plots and exported models.

A trial is on a front when no other measured trial (``status == "complete"``: trained, fits the board, measured)
is at least as accurate and at least as fast (or small), and better in one of the two. Two fronts are kept:
accuracy against the median latency in microseconds, and accuracy against the logic-cell estimate. Ties (equal
figures) stay on the front together.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["FRONTS", "measured", "front", "dominates", "beats", "dominating", "fronts", "table", "plot", "export_front",
           "write_outputs", "read_records"]

#: The fronts: name, the cost key (smaller is better) and its label.
FRONTS = (("latency", "latency_us", "median latency (us)"), ("logic", "logic_cells", "logic cells (estimate)"))


def measured(records):
    """The records with every figure measured: trained, bit-true accuracy known and fitting the board."""
    return [r for r in records if r.get("status") == "complete"]


def dominates(a, b, costs=("latency_us",)):
    """Whether record ``a`` dominates ``b``: at least as accurate and no costlier in every one of ``costs``, and
    strictly better in accuracy or one cost."""
    if a["accuracy"] < b["accuracy"] or any(a[c] > b[c] for c in costs):
        return False
    return a["accuracy"] > b["accuracy"] or any(a[c] < b[c] for c in costs)


def beats(record, baseline):
    """The fronts (:data:`FRONTS` names) on which ``record`` dominates ``baseline``: at least as accurate and
    faster (``latency``), or smaller (``logic``)."""
    return [name for name, cost, _ in FRONTS if dominates(record, baseline, (cost,))]


def dominating(records, baseline):
    """``{"latency": [...], "logic": [...], "both": [...]}``: the trials that dominate ``baseline`` on each front,
    and on accuracy, latency and logic together (no worse in any, better in one)."""
    rows = [r for r in measured(records) if r["trial"] != baseline["trial"]]
    out = {name: [r["trial"] for r in rows if name in beats(r, baseline)] for name, _, _ in FRONTS}
    out["both"] = [r["trial"] for r in rows if dominates(r, baseline, tuple(cost for _, cost, _ in FRONTS))]
    return out


def front(records, cost):
    """The records of ``records`` that no other dominates on accuracy against ``cost``, cheapest first."""
    rows = measured(records)
    keep = [r for r in rows if not any(dominates(o, r, (cost,)) for o in rows if o is not r)]
    return sorted(keep, key=lambda r: (r[cost], -r["accuracy"], r["trial"]))


def fronts(records):
    """``{front name: [records]}`` for every front of :data:`FRONTS`."""
    return {name: front(records, cost) for name, cost, _ in FRONTS}


def table(records, baseline=None):
    """The fronts as a Markdown table, one row per trial on either front (most accurate first)."""
    on = fronts(records)
    members = {}
    for name, rows in on.items():
        for r in rows:
            members.setdefault(r["trial"], (r, []))[1].append(name)
    lines = ["| trial | fronts | layers | T | k | threshold | reset | epochs | bit-true accuracy (validation) | "
             "median latency (us) | cycles | logic cells (est.) | EBR | synaptic ops | dominates the baseline on |",
             "| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    if baseline is not None and baseline["trial"] not in members:
        members[baseline["trial"]] = (baseline, [])
    for r, names in sorted(members.values(), key=lambda m: (-m[0]["accuracy"], m[0]["latency_us"])):
        c = r["config"]
        dom = "-" if baseline is None or r["trial"] == baseline["trial"] else (", ".join(beats(r, baseline)) or "no")
        tag = " (baseline)" if baseline is not None and r["trial"] == baseline["trial"] else ""
        lines.append(f"| {r['trial']}{tag} | {', '.join(names) or '-'} | `{r['layers']}` | {c.get('time_steps')} | "
                     f"{c.get('leak_shift')} | {c.get('threshold', 0):.2f} | {c.get('reset')} | "
                     f"{c.get('epochs')}+{c.get('qat_epochs')} | {100 * r['accuracy']:.1f}% | {r['latency_us']:,.1f} | "
                     f"{r['cycles_median']:,.0f} | {r['logic_cells']:,} | {r['ebr']} | {r['synaptic_ops']:,.0f} | "
                     f"{dom} |")
    return "\n".join(lines) + "\n"


def plot(records, path, cost, label, title, baseline=None):
    """A PNG of accuracy against ``cost``: every measured trial, the front as a line, the baseline marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = measured(records)
    line = front(records, cost)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.scatter([r[cost] for r in rows], [100 * r["accuracy"] for r in rows], s=18, c="0.6", label="trials")
    ax.step([r[cost] for r in line], [100 * r["accuracy"] for r in line], where="post", c="C0", lw=1.2)
    ax.scatter([r[cost] for r in line], [100 * r["accuracy"] for r in line], s=30, c="C0", label="Pareto front")
    for r in line:
        ax.annotate(str(r["trial"]), (r[cost], 100 * r["accuracy"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=7)
    if baseline is not None:
        ax.scatter([baseline[cost]], [100 * baseline["accuracy"]], marker="*", s=120, c="C3",
                   label="shipped default network (same recipe)")
    ax.set_xlabel(label)
    ax.set_ylabel("bit-true accuracy, held-out speaker (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)


def export_front(records, run_dir):
    """Copy the model of every trial on a front into ``run_dir/pareto/trial_NNN`` (ready for ``hw.build
    --model``), replacing what an earlier call put there; returns the directories."""
    run_dir = Path(run_dir)
    target = run_dir / "pareto"
    staging = run_dir / ".pareto.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    out = []
    seen = set()
    for rows in fronts(records).values():
        for r in rows:
            if r["trial"] in seen or not r.get("model"):
                continue
            seen.add(r["trial"])
            name = f"trial_{r['trial']:03d}"
            shutil.copytree(run_dir / r["model"], staging / name)
            out.append(target / name)
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
    return sorted(out)


def write_outputs(records, run_dir, *, title, baseline=None):
    """Write ``pareto.json``, ``pareto.md``, ``pareto_latency.png``, ``pareto_logic.png`` and ``pareto/`` from
    the records; returns the fronts."""
    from train.util import atomic_write_json, atomic_write_text
    run_dir = Path(run_dir)
    on = fronts(records)
    summary = {name: [r["trial"] for r in rows] for name, rows in on.items()}
    if baseline is not None:
        summary["baseline"] = baseline["trial"]
        summary["dominating_baseline"] = dominating(records, baseline)
    export_front(records, run_dir)
    summary["models"] = {str(t): f"pareto/trial_{t:03d}" for t in sorted({t for rows in on.values()
                                                                          for t in (r["trial"] for r in rows)})}
    atomic_write_json(run_dir / "pareto.json", summary)
    atomic_write_text(run_dir / "pareto.md", table(records, baseline))
    for name, cost, label in FRONTS:
        plot(records, run_dir / f"pareto_{name}.png", cost, label, f"{title}: accuracy against {label}", baseline)
    return on


def read_records(path):
    """The records of a ``trials.jsonl`` (an incomplete last line, from an interrupted write, is dropped)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
