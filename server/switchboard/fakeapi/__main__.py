from switchboard.fakeapi.cli import main

raise SystemExit(main())
