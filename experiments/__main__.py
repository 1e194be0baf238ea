from experiments.runner import main

main()
