# A model whose predict never returns.
import time

import mlflow.pyfunc
from mlflow.models import set_model


class Hanging(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        time.sleep(3600)


set_model(Hanging())
