import sys

# Worker processes are spawned and re-import this module as __mp_main__: only
# the real entry point runs the command.
if __name__ == "__main__":
    from .cli import main

    sys.exit(main())
