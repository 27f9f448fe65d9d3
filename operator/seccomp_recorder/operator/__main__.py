"""`python -m seccomp_recorder.operator`: run the operator."""

import sys

from seccomp_recorder.operator.main import main

sys.exit(main())
