// CPU spin in many threads: 48 threads busy forever.
#include <cstdio>
#include <thread>
#include <vector>

static volatile unsigned long counter;

int main() {
    std::vector<std::thread> threads;
    for (int i = 0; i < 48; i++) {
        try {
            threads.emplace_back([] {
                for (;;) {
                    counter = counter + 1;
                }
            });
        } catch (...) {
            break;
        }
    }
    printf("spinning in %zu threads\n", threads.size());
    fflush(stdout);
    for (auto &thread : threads) {
        thread.join();
    }
}
