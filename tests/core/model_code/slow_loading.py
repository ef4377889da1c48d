# A model whose loading never finishes.
import time

import mlflow.pyfunc
from mlflow.models import set_model


class SlowLoading(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        time.sleep(3600)

    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


set_model(SlowLoading())
