# An MLflow "model from code" that records which environment variables model code can see,
# in the file named by ENV_PROBE_FILE (a test's own variable, not a secret).
import json
import os

import mlflow.pyfunc
from mlflow.models import set_model


class EnvProbe(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        with open(os.environ["ENV_PROBE_FILE"], "w") as out:
            json.dump(sorted(os.environ), out)
        return [1.0] * len(model_input)


set_model(EnvProbe())
