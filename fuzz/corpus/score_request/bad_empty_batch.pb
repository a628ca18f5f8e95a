

tiny