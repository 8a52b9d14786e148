"""``python -m thorgym …`` is the ``thorgym`` command (so ``torchrun -m thorgym train …`` works)."""

from thorgym.cli import main

if __name__ == "__main__":
    main()
