"""The kernel IR: KernelProgram, its steps and the special functions inside its expressions.

Imports nothing else of ntksym (see docs/architecture.md).
"""
