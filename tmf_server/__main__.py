import sys

from tmf_server.cli import main

sys.exit(main())
