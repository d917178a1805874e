"""``python -m wavenet_tf.cli``: the same as the `wavenet` console script."""

import sys

from wavenet_tf.cli import main

sys.exit(main())
