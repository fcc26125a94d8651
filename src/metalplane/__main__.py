from metalplane.cli.main import main

raise SystemExit(main())
