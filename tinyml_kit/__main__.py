import sys

from tinyml_kit.cli import main

sys.exit(main())
