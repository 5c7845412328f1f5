"""`python cli.py ...` in a checkout: the same as the installed `npd-sync` command.

The command line itself is `listener/cli.py`, inside the package, so that an installed wheel
adds one import name (`listener`) and nothing else.
"""

from listener.cli import main

if __name__ == "__main__":
    main()
