from calsync.cli import main

main()
