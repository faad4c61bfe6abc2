"""``python -m hero.train`` / ``torchrun -m hero.train``: see hero.train.main."""

from hero.train.main import main

if __name__ == "__main__":
    main()
