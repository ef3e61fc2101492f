from inkcast.cli import main

raise SystemExit(main())
