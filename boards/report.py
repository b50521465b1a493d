"""Build reports: resources and timing from nextpnr, reference figures, rendered as Markdown, a table and JSON.

The figures come from the tools' own outputs, never from estimates:

- :func:`parse_nextpnr_report` reads the JSON that ``nextpnr --report`` writes (utilization per cell type,
  achieved and constrained frequency per clock); :func:`parse_nextpnr_log` reads the same frequencies from the log
  (``--log``), for builds without the JSON; :func:`parse_yosys_log` reads the flip-flop count from the final cell
  statistics of the synthesis.
- :func:`make_report` puts them together with the latency of the cycle model (``flow.timing.latency``), the
  device's cell names and counts (``hw.device.Device.report_cells``) and the reference designs of ``REFERENCES``;
  :func:`to_markdown` and :func:`to_table` render it.
"""

import json
import re

from hw.cycles import format_cycles

__all__ = ["REFERENCES", "GLOSSARY", "check_targets", "parse_nextpnr_report", "parse_nextpnr_log", "parse_nextpnr_utilization",
           "parse_yosys_log", "over_budget", "make_report", "to_markdown", "to_table", "summary"]

#: Published figures to compare with (from docs/FACTS: the seed paper and SYNtzulu on the same device).
REFERENCES = [
    {
        "design": "SYNtzulu (TCSI 2024), SNN processor",
        "device": "iCE40UP5K (iCEBreaker)",
        "logic_cells": 3473, "ebr": 17, "dsp": 2, "spram": 4, "clock_mhz": 24.0,
        "note": "12-14 mW peak",
    },
    {
        "design": "Leow, Goh, Gao (ISCAS 2023), SCNN model B",
        "device": "(software model, FSDD)",
        "logic_cells": None, "ebr": None, "dsp": None, "spram": None, "clock_mhz": None,
        "note": "6C3-128FC-10FC, T=10, 0.702 M parameters, 97.0% INT8 / 98.4% float on FSDD",
    },
]


def parse_nextpnr_report(path_or_text):
    """Utilization and frequencies from a ``nextpnr --report`` JSON file.

    Parameters
    ----------
    path_or_text : str or pathlib.Path or dict
        The file, or its already parsed content.

    Returns
    -------
    dict
        ``{"utilization": {cell type: {"used": int, "available": int}}, "fmax": {clock: {"achieved": MHz,
        "constraint": MHz}}}``.

    Raises
    ------
    ValueError
        If the content has no ``utilization`` object.
    """
    if isinstance(path_or_text, dict):
        content = path_or_text
    else:
        with open(path_or_text) as f:
            content = json.load(f)
    if "utilization" not in content:
        raise ValueError(f"{path_or_text}: not a nextpnr report (no 'utilization' object)")
    utilization = {name: {"used": int(v["used"]), "available": int(v["available"])}
                   for name, v in content["utilization"].items()}
    fmax = {name: {"achieved": float(v["achieved"]), "constraint": float(v["constraint"])}
            for name, v in content.get("fmax", {}).items()}
    return {"utilization": utilization, "fmax": fmax}


_FMAX_LINE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+)\s+MHz\s+\((PASS|FAIL) at\s+([0-9.]+)\s+MHz\)")


def parse_nextpnr_log(path):
    """Final per-clock frequencies from a nextpnr log (the last report in the log wins).

    Returns
    -------
    dict
        ``{clock: {"achieved": MHz, "constraint": MHz, "pass": bool}}``.
    """
    found = {}
    with open(path, errors="replace") as f:
        for line in f:
            match = _FMAX_LINE.search(line)
            if match:
                found[match.group(1)] = {"achieved": float(match.group(2)), "constraint": float(match.group(4)),
                                         "pass": match.group(3) == "PASS"}
    return found


_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


def parse_nextpnr_utilization(path):
    """Utilization from a nextpnr log (its "Device utilisation" table, printed before placement).

    Useful when placement fails (no ``--report`` file is written then).

    Returns
    -------
    dict
        ``{cell type: {"used": int, "available": int}}`` (empty if the log has no table).
    """
    found = {}
    with open(path, errors="replace") as f:
        for line in f:
            match = _UTIL_LINE.match(line.strip("\n"))
            if match:
                found[match.group(1)] = {"used": int(match.group(2)), "available": int(match.group(3))}
    return found


_CELL_OLD = re.compile(r"^\s*(\$?[A-Za-z_]\w*)\s+(\d+)\s*$")      # yosys < 0.52: "     SB_LUT4    123"
_CELL_NEW = re.compile(r"^\s*(\d+)\s+(\$?[A-Za-z_]\w*)\s*$")      # newer: "     123   SB_LUT4", "  218   DFF"
#: Words of the statistics that are not cells ("4502 cells", "9 ports").
_NOT_CELLS = {"wires", "ports", "cells", "submodules", "memories", "processes"}


def parse_yosys_log(path, flip_flop_prefix="SB_DFF"):
    """Cell counts of the last cell statistics in a Yosys log (``synth_ice40``, ``synth_ecp5`` and ``synth_gowin``
    end with one).

    Both the older (``SB_LUT4 123``) and the newer (``123 SB_LUT4``) layouts of ``stat`` are read; the last
    statistics section of the log counts (for a flattened design its top module is the whole design).

    Returns
    -------
    dict
        Cell type to count, plus ``"flip_flops"``: the sum of the cells whose names start with
        ``flip_flop_prefix`` (the device's ``flip_flop_prefix``; iCE40: ``SB_DFF*``).
    """
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    starts = [n for n, line in enumerate(lines) if "Printing statistics" in line]
    section = lines[starts[-1]:] if starts else lines
    cells = {}
    for line in section:
        if "design hierarchy" in line and cells:
            break  # the per-module block came first; the hierarchy block repeats it
        match = _CELL_OLD.match(line)
        if match and match.group(1) not in _NOT_CELLS:
            cells[match.group(1)] = int(match.group(2))
            continue
        match = _CELL_NEW.match(line)
        if match and match.group(2) not in _NOT_CELLS:
            cells[match.group(2)] = int(match.group(1))
    cells["flip_flops"] = sum(count for name, count in cells.items() if name.startswith(flip_flop_prefix))
    return cells


def over_budget(utilization, device):
    """``": the design needs 8,927 of 5,280 logic cells, ..."`` for the cells over the device in a nextpnr
    utilization (:func:`parse_nextpnr_utilization`), or ``""`` when none is over."""
    over = [f"{u['used']:,} of {u['available']:,} {device.report_cells.get(cell, cell)}"
            for cell, u in utilization.items() if u["used"] > u["available"]]
    return f": the design needs {', '.join(over)}" if over else ""


def design_fmax(clocks, clock_hz):
    """The design clock's ``{"clock", "achieved_mhz", "constraint_mhz"}`` among nextpnr's timed clocks (``None``
    when there are none): the one constrained closest to ``clock_hz``, the slowest among equals. nextpnr also times
    unclocked DSP registers as a clock named after the constant net, which is not a design clock."""
    if not clocks:
        return None
    real = {name: entry for name, entry in clocks.items() if "$PACKER_GND_NET" not in name} or clocks
    name, entry = min(real.items(), key=lambda kv: (abs(kv[1]["constraint"] - clock_hz / 1e6), kv[1]["achieved"]))
    return {"clock": name, "achieved_mhz": entry["achieved"], "constraint_mhz": entry["constraint"]}


def make_report(*, board, model, clock_hz, need=None, pnr=None, log_fmax=None, yosys=None, lat=None,
                latency_source=None, build_seconds=None, baud=None, input_len=None):
    """Assemble the build report (a JSON-ready dict).

    Parameters
    ----------
    board : boards.board.Board
    model : golden.manifest.Model
    clock_hz : float
        The design's clock.
    need : hw.resources.Need, optional
        The pre-synthesis estimate.
    pnr : dict, optional
        :func:`parse_nextpnr_report` output (None without place and route).
    log_fmax : dict, optional
        :func:`parse_nextpnr_log` output (used when ``pnr`` has no frequencies).
    yosys : dict, optional
        :func:`parse_yosys_log` output.
    lat : dict, optional
        ``flow.timing.latency`` output.
    latency_source : str, optional
        Where the latency inputs came from.
    build_seconds : float, optional
    baud, input_len : int, optional
        For the serial transfer time of one infer frame.
    """
    from golden.manifest import model_hash

    device = board.device
    counts = device.cell_counts()
    resources = []
    utilization = (pnr or {}).get("utilization", {})
    for cell, label in device.report_cells.items():
        used = utilization.get(cell, {}).get("used")
        available = utilization.get(cell, {}).get("available")
        if available is None:
            available = counts.get(cell)
        resources.append({"resource": label, "cell": cell, "used": used, "available": available})
    flip_flops = (yosys or {}).get("flip_flops") if yosys else None
    resources.insert(1, {"resource": "flip-flops", "cell": f"{device.flip_flop_prefix}*", "used": flip_flops,
                         "available": device.flip_flops or device.logic_cells})

    fmax = design_fmax((pnr or {}).get("fmax") or log_fmax or {}, clock_hz)

    lcs = utilization.get(device.logic_cell, {}).get("used")
    ebr_cell = device.block_ram.cell
    spram_cell = device.wide_ram.cell if device.wide_ram is not None else None
    dsp_cell = device.dsp.cell if device.dsp is not None else None
    report = {
        "board": board.name,
        "device": f"{device.name}-{device.package}",
        "model": model.name,
        "model_hash": model_hash(model),
        "clock_mhz": clock_hz / 1e6,
        "baud": baud,
        "placed": pnr is not None,
        "resources": resources,
        "fmax": fmax,
        "estimate": None if need is None else {"logic_cells": need.logic_cells, "ebr": need.ebr,
                                               "spram": need.spram,
                                               "spram_users": [list(row) for row in need.spram_users],
                                               "breakdown": [list(row) for row in need.breakdown]},
        "latency": lat,
        "latency_source": latency_source,
        "build_seconds": build_seconds,
        "references": REFERENCES,
        # the summary fields (also the last line of --json)
        # placed: nextpnr's count; otherwise the pre-synthesis check (which refuses a model that cannot fit)
        "fits": (bool(lcs <= device.logic_cells) if lcs is not None
                 else None if need is None
                 else bool(need.logic_cells <= device.logic_cells and need.ebr <= device.block_ram.count
                           and need.spram <= (device.wide_ram.count if device.wide_ram is not None else 0))),
        "fits_source": "nextpnr" if lcs is not None else ("estimate" if need is not None else None),
        "logic_cells": lcs,
        "logic_cells_available": device.logic_cells,
        "ebr": utilization.get(ebr_cell, {}).get("used"),
        "spram": utilization.get(spram_cell, {}).get("used"),
        "dsp": utilization.get(dsp_cell, {}).get("used"),
        "flip_flops": flip_flops,
        "fmax_mhz": None if fmax is None else fmax["achieved_mhz"],
        "latency_cycles_median": None if lat is None else lat["cycles"]["median"],
        "latency_us_median": None if lat is None else lat["us"]["median"],
    }
    if baud and input_len:
        report["serial_ms_per_frame"] = (input_len + 7) * 10 / baud * 1e3
    return report


def summary(report):
    """The fields of the one-line JSON summary."""
    keys = ["board", "model", "fits", "logic_cells", "logic_cells_available", "flip_flops", "ebr", "spram", "dsp",
            "fmax_mhz", "clock_mhz", "latency_cycles_median", "latency_us_median", "build_seconds"]
    return {key: report.get(key) for key in keys}


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def _resource_rows(report):
    rows = []
    for row in report["resources"]:
        used, available = row["used"], row["available"]
        share = "-" if used is None or not available else f"{used / available:.0%}"
        rows.append((row["resource"], _fmt(used), _fmt(available), share))
    return rows


def _latency_rows(report):
    lat = report["latency"]
    if lat is None:
        return []
    c, u = lat["cycles"], lat["us"]
    return [
        ("latency, cycles (min / median / max)", f"{c['min']:,} / {format_cycles(c['median'])} / {c['max']:,}"),
        ("latency, us at the clock (min / median / max)", f"{u['min']:.1f} / {u['median']:.1f} / {u['max']:.1f}"),
        ("inferences per second (compute, median)", f"{lat['inferences_per_s']:,.0f}"),
        ("synaptic operations per inference (event-driven, mean)", f"{lat['synaptic_ops_per_inference']:,.0f}"),
        ("dense multiply-accumulates per inference", f"{lat['dense_ops_per_inference']:,}"),
        ("samples", f"{lat['samples']} ({report['latency_source']})"),
    ] + ([("integer model accuracy on these samples", f"{lat['accuracy']:.1%}")] if lat["accuracy"] is not None
         else [])


def _md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _reference_rows(report):
    own = ("spikesmith (this build)", report["device"], _fmt(report["logic_cells"]), _fmt(report["ebr"]),
           _fmt(report["dsp"]), _fmt(report["spram"]), _fmt(report["clock_mhz"]),
           "-" if report["latency_us_median"] is None else f"median latency {report['latency_us_median']:.1f} us")
    rows = [own]
    for ref in report["references"]:
        rows.append((ref["design"], ref["device"], _fmt(ref["logic_cells"]), _fmt(ref["ebr"]), _fmt(ref["dsp"]),
                     _fmt(ref["spram"]), _fmt(ref["clock_mhz"]), ref["note"]))
    return rows


def check_targets(report, targets):
    """Rows ``(name, value, bound, met)`` of a board's ``targets`` (``boards.board.Board.targets``) for a build
    report; ``met`` is None where the report has no value (no place and route, say)."""
    values = dict(report)
    if report.get("logic_cells") is not None and report.get("logic_cells_available"):
        values["logic_share"] = report["logic_cells"] / report["logic_cells_available"]
    rows = []
    for name, key, op, bound in targets:
        value = values.get(key)
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        rows.append((name, value, f"{op} {bound:g}", met))
    return rows


#: What the report's terms mean (the Markdown report ends with it).
GLOSSARY = (
    ("logic cell", "one LUT4 and one flip-flop of the iCE40 (nextpnr's ICESTORM_LC); other families count LUTs"),
    ("EBR", "embedded block RAM, 4 kbit on the iCE40, initialized by the bitstream (weights live there)"),
    ("SPRAM", "the iCE40UP5K's large single-port RAMs (16K x 16 bits each), not initialized at configuration: the "
              "input map, and weights the plan puts there, which the board loads at start-up (weights.bin)"),
    ("DSP", "hard multiply-accumulate blocks (SB_MAC16 on the iCE40)"),
    ("Fmax", "the fastest clock nextpnr's timing analysis allows for the placed design; it must reach the clock"),
    ("cycles", "clock cycles from the first input value of a sample to its result, as the hardware's own counter "
               "reports them; the cycle model predicts them exactly"),
    ("latency", "cycles divided by the clock: the compute time of one inference, without the serial transfer"),
    ("dense ops", "multiply-accumulates of a schedule that skips nothing"),
    ("event ops", "accumulations actually done: only the weights of inputs that spiked (zero-skipping)"),
    ("sparsity", "1 - event ops / dense ops: the work zero-skipping saves"),
    ("spike rate", "the mean share of a layer's neurons that spike at a time step"),
    ("estimate", "the pre-synthesis figure of the fit check, from the plan and the device's calibration"),
)


def to_markdown(report, targets=()):
    """The report as a Markdown document."""
    parts = [f"# Build report: {report['model']} on {report['board']}", "",
             f"Device {report['device']}, clock {report['clock_mhz']:.3f} MHz"
             + (f", UART {report['baud']:,} baud" if report.get("baud") else "")
             + f". Model hash `{report['model_hash']}`.", ""]
    if not report["placed"]:
        parts += ["Place and route was not run: resources below are the pre-synthesis estimate.", ""]
        if report["estimate"]:
            parts.append(_md_table(["part", "logic cells (estimate)", "EBR"],
                                   [(n, f"{c:,}", e) for n, c, e in report["estimate"]["breakdown"]]))
            parts.append("")
            if report["estimate"].get("spram_users"):
                parts += ["SPRAMs (estimate): " + ", ".join(f"{name} {n}" for name, n
                                                            in report["estimate"]["spram_users"]) + ".", ""]
    if report["placed"]:
        parts += ["## Resources (nextpnr)", "", _md_table(["resource", "used", "available", "share"],
                                                           _resource_rows(report)), ""]
    if report.get("weight_image"):
        w = report["weight_image"]
        parts += ["## Weight image", "", f"Weights in SPRAM: the board classifies only after `{w['file']}` "
                  f"({w['bytes']:,} bytes, {w['chunks']} load chunks, CRC 0x{w['crc']:04x}) has been loaded over the "
                  f"UART; `python -m boards.host` loads it when the board asks (docs/hardware.md).", ""]
        if w.get("flash"):
            fl = w["flash"]
            parts[-1:-1] = ["", f"Built with `--flash`: after reset the board reads `{fl['file']}` ({fl['bytes']:,} "
                                f"bytes: header and image) from its SPI flash at 0x{fl['offset']:x} at "
                                f"{fl['sck_hz'] / 1e6:.2f} MHz and loads it by itself; write it there with "
                                f"`iceprog -o {fl['offset'] // 1024}k {fl['file']}` or `hw.build --program --flash`. "
                                f"The UART load stays the fallback."]
    if report["fmax"]:
        f = report["fmax"]
        verdict = "meets" if f["achieved_mhz"] >= f["constraint_mhz"] else "FAILS"
        seed = f" (placement seed {report['seed']})" if report.get("seed") is not None else ""
        parts += ["## Timing", "", f"Fmax {f['achieved_mhz']:.2f} MHz on clock `{f['clock']}`, constraint "
                  f"{f['constraint_mhz']:.2f} MHz: {verdict} the clock{seed}.", ""]
    if report["latency"]:
        parts += ["## Latency and work", "", _md_table(["figure", "value"], _latency_rows(report)), ""]
        parts += [_md_table(["layer", "dense ops", "event ops (mean)", "sparsity", "spike rate"],
                            [(e["layer"], _fmt(e["dense_ops"]), _fmt(e["event_ops"]),
                              "-" if e["sparsity"] is None else f"{e['sparsity']:.1%}",
                              "-" if e["spike_rate"] is None else f"{e['spike_rate']:.1%}")
                             for e in report["latency"]["layers"]]), ""]
        if report.get("serial_ms_per_frame"):
            parts += [f"Sending one input map over the UART takes {report['serial_ms_per_frame']:.1f} ms, "
                      f"which dominates the end-to-end time seen by the host.", ""]
    if targets:
        rows = [(name, "-" if value is None else (f"{value:.1%}" if "share" in name else f"{value:,.2f}"), bound,
                 "n/a" if met is None else ("met" if met else "MISSED"))
                for name, value, bound, met in check_targets(report, targets)]
        parts += ["## Targets", "", _md_table(["target", "value", "bound", "verdict"], rows), ""]
    parts += ["## Compared with published designs", "",
              _md_table(["design", "device", "logic cells", "EBR", "DSP", "SPRAM", "MHz", "note"],
                        _reference_rows(report)), ""]
    if report.get("build_seconds") is not None:
        parts += [f"Build wall time: {report['build_seconds']:.0f} s.", ""]
    parts += ["## Glossary", "", _md_table(["term", "meaning"], GLOSSARY), ""]
    return "\n".join(parts)


def to_table(report, targets=()):
    """The report as a plain-text table for the terminal."""
    lines = [f"{report['model']} on {report['board']} ({report['device']}), clock {report['clock_mhz']:.3f} MHz"]
    width = 44
    if not report["placed"] and report["estimate"]:
        e = report["estimate"]
        lines.append(f"  {'estimate (no place and route)':<{width}} about {e['logic_cells']:,} logic cells, "
                     f"{e['ebr']} block RAMs, {e.get('spram', 0)} SPRAM{'' if e.get('spram', 0) == 1 else 's'}: "
                     f"{'fits' if report['fits'] else 'does NOT fit'}")
    if report["placed"]:
        for name, used, available, share in _resource_rows(report):
            lines.append(f"  {name:<{width}} {used:>8} / {available:<8} {share:>5}")
    if report["fmax"]:
        f = report["fmax"]
        seed = f"  placement seed {report['seed']}" if report.get("seed") is not None else ""
        lines.append(f"  {'Fmax (MHz)':<{width}} {f['achieved_mhz']:>8.2f} / {f['constraint_mhz']:<8.2f} "
                     f"{'ok' if f['achieved_mhz'] >= f['constraint_mhz'] else 'FAIL':>5}{seed}")
    for name, value in _latency_rows(report):
        lines.append(f"  {name:<{width}} {value}")
    if report.get("weight_image"):
        w = report["weight_image"]
        lines.append(f"  {'weight image (load before classifying)':<{width}} {w['file']}, {w['bytes']:,} bytes")
        if w.get("flash"):
            lines.append(f"  {'flash image (read after reset)':<{width}} {w['flash']['file']} at "
                         f"0x{w['flash']['offset']:x}")
    if report.get("build_seconds") is not None:
        lines.append(f"  {'build wall time (s)':<{width}} {report['build_seconds']:.0f}")
    for name, value, bound, met in check_targets(report, targets):
        if met is not None:
            lines.append(f"  {'target: ' + name:<{width}} {bound:<10} {'met' if met else 'MISSED'}")
    return "\n".join(lines)
