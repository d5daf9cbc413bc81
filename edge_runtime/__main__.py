from edge_runtime.cli import main

main()
