import sys

from bert_lab.cli import main

sys.exit(main())
