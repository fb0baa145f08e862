import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';

/** A helper script of spec/support running as a child process, listening on `port`. */
export interface ReadyProcess {
  port: number;
  child: ChildProcess;
  /** Kills it (by PID) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Runs `spec/support/<script>` with node and resolves once it prints `READY <port>`; rejects if
 * it exits first or stays silent for 10 s (and then kills it).
 */
export function startReadyProcess(script: string, args: string[] = []): Promise<ReadyProcess> {
  // stdin stays open: the scripts exit when it ends, so none outlives a test process that died.
  const child = spawn(process.execPath, [join(__dirname, script), ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${script} printed no READY within 10 s`));
    }, 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before it was ready`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\d+)\n/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), child, stop });
      }
    });
  });
}
