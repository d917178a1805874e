"""``python -m wavenet_tf.apps.cli``: the same as the `wavenet` console script."""

import sys

from wavenet_tf.apps.cli import main

sys.exit(main())
