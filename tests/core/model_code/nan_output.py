# A model that answers NaN for every row.
import numpy as np

import mlflow.pyfunc
from mlflow.models import set_model


class NanOutput(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return np.full(len(model_input), np.nan)


set_model(NanOutput())
