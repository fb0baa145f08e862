import { spawn } from 'node:child_process';

/** How a process ended and what it printed. */
export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** An environment that keeps a client's user configuration (~/.ssh, locale) out of a test. */
export const CLEAN_ENV: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/nonexistent' };

/**
 * Runs a process to its end with stdin from `input`, collecting its output; it is killed
 * (SIGKILL) after `timeoutMs`, so the promise always settles. Rejects only if it cannot start.
 * Not for a test whose thread blocks meanwhile: the output arrives through this thread's events.
 */
export function runProcess(
  cmd: string,
  args: string[],
  options: { input?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
