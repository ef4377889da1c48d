"""The container's entrypoint: the GitHub Action adapter around `model-gate check`.

Kept to a few lines so the image's command is stable; the logic lives in
gate/action.py, where it is tested like the rest of the package.
"""

from gate.action import main
from gate.cli import exit_without_teardown

if __name__ == "__main__":
    exit_without_teardown(main())
