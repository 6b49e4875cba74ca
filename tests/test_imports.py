"""`import reluscope` and its core names must not pull in matplotlib, typer or sklearn."""

import json
import subprocess
import sys

HEAVY = ("matplotlib", "typer", "sklearn")

CODE = """
import json, sys
import reluscope
for name in ("to_network", "activation_patterns", "traverse", "traverse_many", "save_model", "load_model",
             "hamming", "pairwise_hamming", "Network", "Traversal"):
    getattr(reluscope, name)
import reluscope.data, reluscope.train, reluscope.report, reluscope.viz, reluscope.patterns.summary, reluscope.io_utils
from reluscope.data import load_mnist, make_toy, load_digits
make_toy("moons", 10)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(%r))))
"""


def test_core_imports_stay_light():
    out = subprocess.run([sys.executable, "-c", CODE % (HEAVY,)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_cli_module_imports_typer_only_itself():
    code = "import sys, reluscope.cli; print('matplotlib' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
