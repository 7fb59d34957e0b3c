using System.Runtime.InteropServices;

namespace ResnetMnist.Tool;

/// <summary>
/// SIGINT (Ctrl-C), SIGTERM (docker stop, systemd, Slurm, <c>timeout</c>) and SIGHUP (a closed terminal or SSH
/// session) all end a run the same way: the current step finishes, a resumable checkpoint is written, and the
/// process exits with 128 + the signal's number (130, 143, 129). A second signal abandons the run at once: what
/// listens on <see cref="Abandoning"/> (the run writes its <c>summary.json</c> and releases its lock) runs first.
/// </summary>
sealed class InterruptSignals : IDisposable
{
    readonly CancellationTokenSource _cts = new(), _abandon = new();
    readonly List<PosixSignalRegistration> _registrations = [];
    int _received; // the first signal's number, 0 while none came

    public CancellationToken Token => _cts.Token;

    /// <summary>Fires on the second signal, just before the process ends; its callbacks run to completion first.</summary>
    public CancellationToken Abandoning => _abandon.Token;

    /// <summary>Shows the "finishing the current step" note (the progress display, which knows where it can go); default: standard error.</summary>
    public Action<string>? Notice { get; set; }

    /// <summary>The first signal received, or null.</summary>
    public PosixSignal? Received => _received == 0 ? null : (PosixSignal)(-_received);

    /// <summary>The exit code for the signal received: 128 + its number.</summary>
    public int ExitCode => Received switch
    {
        PosixSignal.SIGTERM => 143,
        PosixSignal.SIGHUP => 129,
        _ => ErrorHandling.Interrupted,
    };

    public InterruptSignals()
    {
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
            _registrations.Add(PosixSignalRegistration.Create(signal, OnSignal));
    }

    void OnSignal(PosixSignalContext context)
    {
        // PosixSignal values are negative (SIGINT = -2 ...), kept positive here so that 0 means "none yet".
        if (Interlocked.CompareExchange(ref _received, -(int)context.Signal, 0) != 0)
        {
            // The second signal: abandon at once; the previous checkpoint stays (every file is replaced atomically).
            try { _abandon.Cancel(); }
            catch (AggregateException) { } // a summary that could not be written does not keep the process alive
            Abandon(ExitCode);
            return;
        }
        context.Cancel = true;
        var name = context.Signal switch { PosixSignal.SIGTERM => "SIGTERM", PosixSignal.SIGHUP => "SIGHUP", _ => "interrupt" };
        var note = $"{name}: finishing the current step and writing a checkpoint (send it again to abandon)";
        try
        {
            if (Notice is { } notice) notice(note);
            else Console.Error.WriteLine(note);
        }
        catch (IOException) { } // a hung-up terminal: the checkpoint matters, the message does not
        _cts.Cancel();
    }

    /// <summary>
    /// Ends the process now, without exit handlers: <see cref="Environment.Exit"/> would tear libtorch down while
    /// the training thread is still inside it (measured: an internal assert from libtorch, printed as an error).
    /// </summary>
    static void Abandon(int code)
    {
        try
        {
            try { Console.Error.WriteLine("abandoned: the run stops now, without a new checkpoint"); } catch (IOException) { }
            _exit(code);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            Environment.Exit(code);
        }
    }

    [DllImport("libc", EntryPoint = "_exit")]
    static extern void _exit(int status);

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _cts.Dispose();
        _abandon.Dispose();
    }
}
