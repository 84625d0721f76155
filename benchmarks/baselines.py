"""The article's three designs, as it wrote them (urllib, no validation), on our links."""

from __future__ import annotations

import os
from functools import partial
from multiprocessing.pool import Pool
from pathlib import Path
from queue import Queue
from threading import Thread
from urllib.request import urlopen


def download_link(directory: Path, link: str) -> None:
    download_path = directory / os.path.basename(link)
    with urlopen(link) as image, download_path.open("wb") as f:
        f.write(image.read())


def sequential(directory: Path, links: list[str]) -> None:
    for link in links:
        download_link(directory, link)


class DownloadWorker(Thread):
    def __init__(self, queue: Queue[tuple[Path, str]]) -> None:
        Thread.__init__(self)
        self.queue = queue

    def run(self) -> None:
        while True:
            directory, link = self.queue.get()
            try:
                download_link(directory, link)
            finally:
                self.queue.task_done()


def threads_on_a_queue(directory: Path, links: list[str], count: int = 8) -> None:
    queue: Queue[tuple[Path, str]] = Queue()
    for _ in range(count):
        worker = DownloadWorker(queue)
        worker.daemon = True
        worker.start()
    for link in links:
        queue.put((directory, link))
    queue.join()


def process_pool(directory: Path, links: list[str], count: int = 8) -> None:
    with Pool(count) as pool:
        pool.map(partial(download_link, directory), links)
