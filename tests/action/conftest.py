import sys
from pathlib import Path

# runner.py (the runner-like parsers) and tests/servers.py are imported by name.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
