from authgen.cli import main

main()
