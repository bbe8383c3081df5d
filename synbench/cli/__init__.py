"""The ``synbench`` command: argument parsing and exit codes (``main``), what each command does
(``commands``, ``board_commands``), what they print (``output``).

Imports: any part of synbench, and the Prefect flows (``synbench_flows``), lazily.
"""
