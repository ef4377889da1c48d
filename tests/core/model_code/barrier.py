# An MLflow "model from code" whose predict stops at a barrier, so a test can move the champion
# while the gate is between its comparison and its promotion. BARRIER_DIR is the test's own folder.
import os
import time
from pathlib import Path

import mlflow.pyfunc
from mlflow.models import set_model


class Barrier(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        barrier = Path(os.environ["BARRIER_DIR"])
        (barrier / "started").touch()
        deadline = time.monotonic() + 60
        while not (barrier / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return [0] * len(model_input)


set_model(Barrier())
