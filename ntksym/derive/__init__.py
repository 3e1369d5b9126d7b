"""Derivation: the graph and its layers' rules -> a :class:`ntksym.ir.program.KernelProgram`."""
