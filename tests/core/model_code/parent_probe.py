# An MLflow "model from code" that tries to read the gate's environment (and so its credentials)
# through /proc/<parent>/environ, and writes what it got to the file named by ENV_PROBE_FILE.
import os

import mlflow.pyfunc
from mlflow.models import set_model


class ParentProbe(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as environ:
                seen = environ.read().decode(errors="replace")
        except OSError as error:
            seen = f"refused: {error.strerror}"
        with open(os.environ["ENV_PROBE_FILE"], "w") as out:
            out.write(seen)
        return [1.0] * len(model_input)


set_model(ParentProbe())
