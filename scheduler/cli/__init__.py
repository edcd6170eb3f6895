"""The command line: `main.main` parses the arguments and runs one command, with its tables
(`tables`), trouble wording (`trouble`) and the offline demo (`demo`).
The commands are described in docs/commands.md."""
