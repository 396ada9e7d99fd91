from newsfold.cli import main

main()
