# An MLflow "model from code" whose predict always raises.
import mlflow.pyfunc
from mlflow.models import set_model


class Raising(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        raise RuntimeError("feature store unavailable")


set_model(Raising())
