from experiments import entry
from experiments.fashion_mnist import __doc__ as doc
from experiments.fashion_mnist.config import FULL, QUICK
from experiments.fashion_mnist.pipeline import run

if __name__ == "__main__":
    entry.main(doc.splitlines()[0], run, FULL, QUICK)
