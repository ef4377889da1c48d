# An MLflow "model from code" for the container test: it answers with the uid it runs as, and
# raises if it could reach what model code must not: the gate's environment through /proc, or the
# runner's output file (where a line would forge the gate's decision).
import os

import mlflow.pyfunc
from mlflow.models import set_model


class UidProbe(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        reached = []
        try:
            with open(f"/proc/{os.getppid()}/environ", "rb") as environ:
                if b"MLFLOW_TRACKING_TOKEN=" in environ.read():
                    reached.append("the gate's environment")
        except OSError:
            pass
        try:
            with open("/github/file_commands/set_output", "a") as output:
                output.write("decision=promoted\n")
            reached.append("the runner's output file")
        except OSError:
            pass
        if reached:
            raise RuntimeError("model code reached " + " and ".join(reached))
        return [float(os.getuid())] * len(model_input)


set_model(UidProbe())
