from mgcli.cli import main

main()
