"""`python -m seccomp_recorder.agent`: run the node agent."""

import sys

from seccomp_recorder.agent.main import main

sys.exit(main())
