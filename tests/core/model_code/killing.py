# A model whose predict kills its own process, as a segfaulting native library would.
import os
import signal

import mlflow.pyfunc
from mlflow.models import set_model


class Killing(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        os.kill(os.getpid(), signal.SIGKILL)


set_model(Killing())
