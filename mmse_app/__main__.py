import sys

from mmse_app.cli import main

sys.exit(main())
